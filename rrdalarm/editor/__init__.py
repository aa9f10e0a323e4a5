"""The threshold editor's helpers: path suggestions, preview, backtest, edits, overview."""
