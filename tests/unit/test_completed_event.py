"""``export.completed`` stays bounded however many files a job has, and reads its older shape."""

from __future__ import annotations

from exporter.contracts.events import EVENT_FILES, ExportCompletedData
from exporter.contracts.job import JobFile, JobResult
from exporter.domain.job_life import JobStatus


def files(count: int) -> list[JobFile]:
    return [
        JobFile(key=f"k/{n}", name=f"{n}.csv", size_in_bytes=1, rows=1, checksum="-", content_type="text/csv")
        for n in range(count)
    ]


def test_an_event_lists_the_first_files_and_counts_them_all() -> None:
    result = JobResult(status=JobStatus.DONE, files=files(EVENT_FILES + 1))
    data = ExportCompletedData.from_result("job", "req", result)
    assert (len(data.files), data.file_count, data.files_truncated) == (EVENT_FILES, EVENT_FILES + 1, True)


def test_an_event_with_few_files_lists_them_all() -> None:
    data = ExportCompletedData.from_result("job", "req", JobResult(status=JobStatus.DONE, files=files(3)))
    assert (len(data.files), data.file_count, data.files_truncated) == (3, 3, False)


def test_an_event_of_the_older_shape_still_validates() -> None:
    older = {
        "jobId": "job",
        "requestId": "req",
        "status": "done",
        "files": [file.to_wire() for file in files(EVENT_FILES + 5)],  # every file, and no count
    }
    data = ExportCompletedData.model_validate(older)
    listed = EVENT_FILES + 5
    assert (len(data.files), data.file_count, data.files_truncated) == (listed, listed, False)
