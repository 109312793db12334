"""Django app (issue 7): segment definitions, the PQL editor with live validation, versions,
estimate and preview, segment jobs from the list.
"""
