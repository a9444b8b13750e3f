"""What both sides know of eSMS's reports: the one reading of callbacks and status answers,
and the signed callback URL the worker gives eSMS and the API receives. The eSMS HTTP client
is the worker's (worker.esms)."""
