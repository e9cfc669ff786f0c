"""Sans-I/O IRC protocol layer shared by the server workers and the client: bytes in, messages out."""
