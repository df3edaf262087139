"""Behind utils.model_debugger (the front door): layer selection, statistics, captures, the NaN guard, the summary."""
