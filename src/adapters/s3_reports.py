"""The reports bucket: published reports (``reports/<trial_id>/pre-post/...``) and the files
of export jobs (``exports/<trial_id>/<job_id>/...``), fetched by presigned GET URLs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

#: part size of a multipart upload (S3's minimum is 5 MiB for every part but the last)
PART_BYTES = 8 * 1024 * 1024


class ReportBucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def prefix(self, trial_id: str) -> str:
        return f"reports/{trial_id}/pre-post"

    def export_prefix(self, trial_id: str) -> str:
        return f"exports/{trial_id}"

    def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str) -> int:
        """Write `chunks` as one object, part by part (multipart over `PART_BYTES`), so no
        more than one part is held in memory. Returns the object's size in bytes."""
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )["UploadId"]
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self.put(key, bytes(buffer), content_type)
                return size
            if buffer:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            if upload_id is not None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return size

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        etag = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        return {"ETag": etag, "PartNumber": number}

    def download_url(self, key: str, *, filename: str, expires_in: int) -> str:
        """A presigned GET of `key`, valid `expires_in` seconds (or until the signing
        credentials expire, if sooner), that saves as `filename`. Signing calls no service."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=expires_in,
            )
        )

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
