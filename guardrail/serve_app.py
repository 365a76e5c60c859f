"""The LitServe app of ``guardrail serve``: the API class and the server around it.

Imported only to serve (litserve, FastAPI and uvicorn load with it). The API class lives at
module level: LitServe's worker processes are spawned and unpickle it. No ``from __future__
import annotations`` here: FastAPI reads ``decode_request``'s annotation (:class:`Body`) at run
time to parse and validate the body.
"""

import json
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from guardrail.serving import MAX_BODY, PredictionLog, ServedModel


class Body(BaseModel):
    """A request body: ``{"records": [...]}`` (what is inside is the contract's to judge)."""

    records: Any


class GuardrailAPI(ls.LitAPI):
    """Contract check in ``decode_request``, the model in ``predict``, logging after."""

    def __init__(self, export_dir: str, log_path: str | None, strict: bool) -> None:
        super().__init__()
        self.export_dir, self.log_path, self.strict = export_dir, log_path, strict

    def setup(self, device: str) -> None:
        """In the worker process: nothing is opened before the spawn."""
        self.model = ServedModel(self.export_dir, strict=self.strict)
        self.log = PredictionLog(self.log_path) if self.log_path else None

    def decode_request(self, request: Body) -> tuple[list[Any], list[dict[str, Any]]]:
        """The records and their warnings; every error of every record answers 422."""
        records = request.records
        if not isinstance(records, list):
            raise HTTPException(422, detail={"errors": [{
                "record": None, "field": "records",
                "problem": "must be a list of records (JSON objects)"}]})
        errors, warnings = self.model.check(records)
        if errors:
            raise HTTPException(422, detail={"errors": errors, "warnings": warnings})
        return records, warnings

    def predict(self, x: tuple[list[Any], list[dict[str, Any]]]) -> dict[str, Any]:
        """Predictions, logged with each record's warnings."""
        records, warnings = x
        try:
            predictions = self.model.predict(records)
        except Exception as err:  # the contract let through what the model refuses
            raise HTTPException(422, detail={"errors": [{
                "record": None, "field": None,
                "problem": f"the model could not take these records ({type(err).__name__}: "
                           f"{err})"}]}) from None
        if self.log is not None:
            per_record: list[list[dict[str, Any]]] = [[] for _ in records]
            for w in warnings:
                if isinstance(w.get("record"), int) and 0 <= w["record"] < len(records):
                    per_record[w["record"]].append(w)
            self.log.append(self.model.model_id, records, predictions, per_record)
        return {"predictions": predictions, "warnings": warnings,
                "model_id": self.model.model_id}

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        """The answer as it is."""
        return output


def build_server(export_dir: str | Path, log_path: str | Path | None, strict: bool = False,
                 max_body: int = MAX_BODY, workers: int = 1) -> Any:
    """The LitServe server of an export (not started): ``.run(host=..., port=...)``."""
    api = GuardrailAPI(str(export_dir), None if log_path is None else str(log_path), strict)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=workers, timeout=30,
                          max_payload_size=int(max_body))
    contract = json.loads((Path(export_dir) / "contract.json").read_text())

    @server.app.get("/contract")
    def _contract() -> dict[str, Any]:
        return contract

    async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
        body = err.detail if isinstance(err.detail, dict) and "errors" in err.detail else {
            "errors": [{"record": None, "field": None, "problem": str(err.detail)}]}
        return JSONResponse(body, status_code=err.status_code)

    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{"record": None, "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or
                   "body", "problem": f"{e.get('msg', 'invalid')}: the body must be a JSON "
                   "object {\"records\": [...]}"} for e in err.errors()[:20]]
        return JSONResponse({"errors": errors}, status_code=422)

    server.app.add_exception_handler(HTTPException, _http_error)
    server.app.add_exception_handler(RequestValidationError, _invalid)
    return server
