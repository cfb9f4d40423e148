"""Plain-Python references of the native core, for the property tests.

Each module mirrors one part of :mod:`eventstream.server.native` and is
written independently of the C code, so comparing the two means something.
The server never imports them.
"""
