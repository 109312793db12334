"""Django app (issues 6 and 9): the Job and JobEvent rows, submit/poll/sweep tasks, job history,
schedules and alerts.
"""
