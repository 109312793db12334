"""Django app (issue 6): connections to Adobe Experience Platform or the built-in engine, their
encrypted credentials, test-connection and the connection/sandbox switcher.
"""
