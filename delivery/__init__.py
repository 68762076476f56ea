"""Hand-off targets and the documents a billing team sends (AR interface, UBL, batch files, webhook)."""
