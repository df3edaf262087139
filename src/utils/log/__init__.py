"""Behind utils.logging (the front door): the queue and its thread, value checks, the run's text files, the writers."""
