"""The results folder of a command-line run: settings, journal, best model, report and plots."""
