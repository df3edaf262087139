"""Behind utils.model_debugger (the front door): which layers are watched, and their statistics."""
