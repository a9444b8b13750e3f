"""The README's first call: a Voice OTP through the HTTP API (`pip install 'voicecall[client]'`,
then set VOICECALL_URL and VOICECALL_TOKEN)."""

import voicecall

with voicecall.Client() as client:  # reads VOICECALL_URL and VOICECALL_TOKEN
    job = client.create_otp_call("0901234567", "Ma xac thuc cua ban la 482913", ttl_s=300)
    print(job.id, job.state)  # safe to retry: one idempotency key per call, sent on each try
    print(client.get_call(job.id).state)
