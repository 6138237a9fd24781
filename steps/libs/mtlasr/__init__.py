"""mtlasr: the Python library behind the recipes' steps (multi-task LSTM-HMM acoustic modelling)."""
