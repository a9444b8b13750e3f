"""The asyncio client: a campaign of record calls, then its jobs page by page and its figures."""

import asyncio

import voicecall


async def main() -> None:
    async with voicecall.AsyncClient() as client:
        calls = [{"kind": "record_call", "phone": f"090123456{i}", "record_id": "rec-welcome"}
                 for i in range(3)]  # fmt: skip
        result = await client.create_batch(calls, campaign="tet-2030")
        print(result.accepted, "accepted,", result.failed, "refused")
        async for job in client.iter_calls(labels={"campaign": "tet-2030"}):
            print(job.id, job.phone, job.state)
        print((await client.get_campaign("tet-2030")).progress)


asyncio.run(main())
