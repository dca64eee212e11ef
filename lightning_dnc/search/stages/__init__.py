"""What to try next: the stage interface, the BO and grid stages, one BO pick, stage-2 groups and
the strategies that compose stages. A new stage or strategy goes here."""
