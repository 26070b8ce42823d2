"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text must contain at least one non-whitespace character")
    return text


class PredictRequestBase(BaseModel):
    """Either one ``text`` or a list of ``texts``; never both, never neither."""

    # The schema says it too (OpenAPI clients and fuzzers read it): exactly one of the two is present.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["texts"]}]},
    )

    @model_validator(mode="after")
    def _exactly_one_form(self) -> PredictRequestBase:
        has_text = getattr(self, "text", None) is not None
        has_texts = getattr(self, "texts", None) is not None
        if has_text == has_texts:
            raise ValueError("send exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self

    @property
    def items(self) -> list[str]:
        texts: list[str] | None = getattr(self, "texts", None)
        return texts if texts is not None else [self.text]


def predict_request_model(max_text_chars: int, max_batch_items: int) -> type[PredictRequestBase]:
    """The request model with this deployment's limits baked into its schema (and its OpenAPI doc)."""
    text_type = Annotated[str, StringConstraints(min_length=1, max_length=max_text_chars), AfterValidator(_not_blank)]
    return create_model(
        "PredictRequest",
        __base__=PredictRequestBase,
        text=(text_type | None, Field(None, description="One text to classify.")),
        texts=(
            Annotated[list[text_type], Field(min_length=1, max_length=max_batch_items)] | None,
            Field(None, description=f"Up to {max_batch_items} texts, answered in order."),
        ),
    )


class Prediction(BaseModel):
    label: Literal["negative", "positive"]
    score: float = Field(description="P(positive), from 0.0 to 1.0.")
    confidence: float = Field(description="Probability of the predicted label, from 0.5 to 1.0.")
    model_version: str


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None = None
    reason: str | None = None


class ModelInfo(BaseModel):
    model_version: str
    model_name: str
    metrics_heldout: dict[str, float]
    # Accuracy and more on labelled sets from other domains (tweets, news, product, bank and IMDb reviews).
    metrics_out_of_domain: dict[str, dict[str, float]] = {}
    data: dict[str, Any]
    artifact: dict[str, Any]


class ErrorDetail(BaseModel):
    location: str
    message: str


class ErrorBody(BaseModel):
    type: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody
