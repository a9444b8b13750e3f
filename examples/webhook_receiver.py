"""The README's webhook receiver (FastAPI): verify each delivery, refuse forged or old ones.

Run with `WEBHOOK_SECRET=whsec_... uvicorn --app-dir examples webhook_receiver:app`.
"""

import os

from fastapi import FastAPI, HTTPException, Request

from voicecall.client import InvalidWebhook, verify_webhook

app = FastAPI()


@app.post("/hooks/voicecall")
async def voicecall_webhook(request: Request) -> dict[str, str]:
    try:
        event = verify_webhook(request.headers, await request.body(), os.environ["WEBHOOK_SECRET"])
    except InvalidWebhook as exc:
        raise HTTPException(400, str(exc)) from None
    print(event.id, event.job.id, event.job.state)  # event.id repeats on a retry: drop those
    return {"status": "ok"}
