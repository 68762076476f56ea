"""Source systems of the close. One module per system; `factory.py` is the only place that chooses."""
