"""Reports built from run stores alone (no model is loaded): leaderboards, tables, plots, HTML."""
