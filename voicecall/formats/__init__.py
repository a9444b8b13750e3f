"""Values from outside, read and shown one way everywhere: Vietnamese phone numbers, kept
free text, and times (``send_at`` in, eSMS's ``SendDate`` out)."""
