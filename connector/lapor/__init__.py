"""Everything that talks to SP4N-LAPOR!: the wire format, the HTTP transport, paging and the client.

Import the client from ``connector.lapor.client``; this package module stays empty so that
``connector.config`` can use the wire format without importing the client.
"""
