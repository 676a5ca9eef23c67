"""Real Java traces, as Connect reports them, shared by the fingerprint and skip-rule tests."""

from __future__ import annotations

CONNECT_EXC = "org.apache.kafka.connect.errors.ConnectException"
DATA_EXC = "org.apache.kafka.connect.errors.DataException"
SER_EXC = "org.apache.kafka.common.errors.SerializationException"
JSON_PARSE = "com.fasterxml.jackson.core.JsonParseException"
# The shape of the real trace of a JsonConverter (schemas.enable=true) reading a plain string, with
# errors.tolerance=none: the error handler wraps the converter's DataException, whose causes follow.
BAD_JSON_TRACE = (
    f"{CONNECT_EXC}: Tolerance exceeded in error handler\n"
    "\tat org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execAndHandleError"
    "(RetryWithToleranceOperator.java:260)\n"
    "\tat org.apache.kafka.connect.runtime.WorkerSinkTask.convertAndTransformRecord(WorkerSinkTask.java:537)\n"
    f"Caused by: {DATA_EXC}: Converting byte[] to Kafka Connect data failed due to serialization error: \n"
    "\tat org.apache.kafka.connect.json.JsonConverter.toConnectData(JsonConverter.java:333)\n"
    "\t... 17 more\n"
    f"Caused by: {SER_EXC}: {JSON_PARSE}: Unrecognized token 'hello': was expecting (JSON String, Number, Array,"
    " Object or token 'null', 'true' or 'false')\n"
    " at [Source: REDACTED; line: 1, column: 6]\n"
    "\t... 20 more\n"
    f"Caused by: {JSON_PARSE}: Unrecognized token 'hello': was expecting ...\n"
    "\tat com.fasterxml.jackson.core.JsonParser._constructError(JsonParser.java:2477)\n"
    "\t... 21 more\n"
)
# FileStreamSinkTask.start on a path whose directory does not exist.
FILE_TRACE = (
    f"{CONNECT_EXC}: Couldn't find or create file '/tmp/x/not-yet/out.txt' for FileStreamSinkTask\n"
    "\tat org.apache.kafka.connect.file.FileStreamSinkTask.start(FileStreamSinkTask.java:66)\n"
    "Caused by: java.nio.file.NoSuchFileException: /tmp/x/not-yet/out.txt\n"
    "\tat java.base/sun.nio.fs.UnixException.translateToIOException(UnixException.java:92)\n"
    "\t... 12 more\n"
)
