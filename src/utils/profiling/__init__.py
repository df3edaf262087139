"""Behind utils.profiler (the front door): the report's table and the torch.profiler helper."""
