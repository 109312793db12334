"""Django app (issue 8): datasets, export jobs, reading and downloading audience data."""
