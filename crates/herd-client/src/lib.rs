//! A typed client of herd's HTTP API that signs every request.
