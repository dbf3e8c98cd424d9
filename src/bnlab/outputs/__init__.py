"""What a run leaves behind: files written atomically, TensorBoard logs, figures, the report."""
