"""Widgets: each draws the state it is given and posts messages; none touches the network."""
