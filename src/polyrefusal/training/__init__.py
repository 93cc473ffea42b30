"""Model building and training (the embedded base model and DPO)."""
