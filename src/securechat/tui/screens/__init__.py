"""Screens of the TUI: the only places, with the app, that call the ChatClient."""
