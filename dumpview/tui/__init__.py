"""The Textual inspector (issue: the TUI). Reads the model, never files."""
