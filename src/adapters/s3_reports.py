"""Published reports in S3: s3://<bucket>/reports/<trial_id>/pre-post/..."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


class ReportBucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def prefix(self, trial_id: str) -> str:
        return f"reports/{trial_id}/pre-post"

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
        )  # the bucket's default encryption (the stack's KMS data key) applies
        return f"s3://{self.bucket}/{key}"

    def put_json(self, key: str, document: dict[str, Any]) -> str:
        body = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False).encode()
        return self.put(key, body, "application/json")

    def delete_versions(self, prefix: str, *, naming: Callable[[bytes], bool]) -> int:
        """Delete every stored version under `prefix` whose content `naming` flags.

        The bucket is versioned, so an overwritten or deleted report keeps its old versions:
        each is read and, if it names the participant, that version itself is deleted (not
        hidden behind a delete marker). Returns how many versions went.
        """
        deleted = 0
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix + "/"):
            for version in page.get("Versions", []):
                body = self.client.get_object(
                    Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                )["Body"].read()
                if naming(body):
                    self.client.delete_object(
                        Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                    )
                    deleted += 1
        return deleted

    def get_json(self, key: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        document: dict[str, Any] = json.loads(response["Body"].read())
        return document
