"""Run gcp-storage-emulator with two gaps to GCS filled, both of which TensorStore relies on:

- listings honour ``startOffset``/``endOffset``: TensorStore lists a prefix as a key range
  rather than with ``prefix=``; the emulator returns the whole bucket, whose other keys
  TensorStore cannot strip its prefix from;
- downloads carry ``x-goog-generation``: OCDBT (orbax's checkpoint format) reads each
  object's generation from it and refuses a read without one;
- uploads honour ``ifGenerationMatch`` (412 when the object's generation differs; 0: "absent"),
  the create-if-absent precondition a sweep's run claim relies on. The server answers one
  request at a time, so the check and the write are atomic;
- an empty media upload (a run's first ``metrics.jsonl`` sync before any row) is an empty
  object: the emulator reads the missing body as None and answers 500, which TensorStore retries
  without end.
"""

import sys
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_ls = objects.ls


class _RangeFiltered:
    def __init__(self, storage, start, end):
        self._storage, self._start, self._end = storage, start, end

    def __getattr__(self, name):
        return getattr(self._storage, name)

    def get_file_list(self, *args, **kwargs):
        files, prefixes = self._storage.get_file_list(*args, **kwargs)
        keep = [f for f in files if (not self._start or f["name"] >= self._start)
                and (not self._end or f["name"] < self._end)]
        return keep, prefixes


def ls(request, response, storage, *args, **kwargs):
    q = request.query
    start, end = (q.get(k, [None])[0] for k in ("startOffset", "endOffset"))
    return _ls(request, response, _RangeFiltered(storage, start, end), *args, **kwargs)


_download = objects.download


def download(request, response, storage, *args, **kwargs):
    try:
        obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        response["x-goog-generation"] = obj["generation"]
        response["x-goog-metageneration"] = obj["metageneration"]
    except Exception:  # a missing object: the download handler answers 404
        pass
    return _download(request, response, storage, *args, **kwargs)


_insert = objects.insert


def insert(request, response, storage, *args, **kwargs):
    if request.query.get("uploadType", [""])[0] == "media" and request.data is None:
        request._data = b""
    want = request.query.get("ifGenerationMatch", [None])[0]
    if want is not None and "name" in request.query:
        try:
            obj = storage.get_file_obj(request.params["bucket_name"], request.query["name"][0])
            have = str(obj["generation"])
        except NotFound:
            have = "0"
        if have != want:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json({"error": {"code": 412, "message": "conditionNotMet"}})
            return None
    return _insert(request, response, storage, *args, **kwargs)


objects.ls = ls
objects.download = download
objects.insert = insert

if __name__ == "__main__":
    from gcp_storage_emulator.__main__ import main

    sys.exit(main())
