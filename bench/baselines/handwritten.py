"""Baseline: the endpoint a team would write by hand for the same job.

FastAPI + SQLAlchemy + pydantic, bearer token checked with PyJWT, one primary-key lookup in
the same database opstatus uses (BENCH_DB_URL; its table is BENCH_DB_TABLE, which is
``opstatus_operations`` on PostgreSQL), a pydantic model for the response.
"""

from __future__ import annotations

import os

import jwt
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["BENCH_DB_URL"], pool_size=8)
KEY = bytes.fromhex(os.environ["BENCH_KEY_HEX"])
TABLE = os.environ.get("BENCH_DB_TABLE", "operations")
app = FastAPI()


class OperationStatus(BaseModel):
    id: str
    name: str
    startTime: str | None = None
    endTime: str | None = None
    status: str


@app.get(
    "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operationsStatus/{op_id}",
    response_model=OperationStatus,
    response_model_exclude_none=True,
)
def get_status(
    sub: str,
    ns: str,
    loc: str,
    op_id: str,
    api_version: str | None = None,
    authorization: str = Header(""),
) -> OperationStatus:
    try:
        jwt.decode(
            authorization.removeprefix("Bearer "), KEY, algorithms=["HS256"], audience="opstatus"
        )
    except jwt.InvalidTokenError:
        raise HTTPException(401) from None
    with engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT operation_id, location, status, start_time, end_time FROM {TABLE} "
                "WHERE subscription_id = :sub AND operation_key = :key"
            ),
            {"sub": sub, "key": op_id.lower()},
        ).first()
    if row is None:
        raise HTTPException(404)
    return OperationStatus(
        id=f"/subscriptions/{sub}/providers/{ns}/locations/{row.location}/operationsStatus/"
        f"{row.operation_id}",
        name=row.operation_id,
        startTime=row.start_time,
        endTime=row.end_time,
        status=row.status,
    )
