# embed_source.cmake: turns a source file (script_server.py) into a C++ file that
# defines it as a string, so that the binary carries the script and a worker needs no
# file beside it. Run as a build step:
#   cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DSYMBOL=<name> -DNAMESPACE=<ns> -P embed_source.cmake
# The text goes into one raw string literal; a file that contains the delimiter fails the
# build rather than producing a truncated script.
foreach(_var INPUT OUTPUT SYMBOL NAMESPACE)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "embed_source.cmake: ${_var} is not set")
  endif()
endforeach()
file(READ "${INPUT}" _text)
set(_delimiter "nimbus_embed")
string(FIND "${_text}" ")${_delimiter}\"" _clash)
if(NOT _clash EQUAL -1)
  message(FATAL_ERROR "embed_source.cmake: ${INPUT} contains the raw-string delimiter")
endif()
get_filename_component(_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${_name} by embed_source.cmake: edit the source, not this file.\n"
  "namespace ${NAMESPACE} {\n"
  "extern const char ${SYMBOL}[];\n"
  "const char ${SYMBOL}[] = R\"${_delimiter}(${_text})${_delimiter}\";\n"
  "}  // namespace ${NAMESPACE}\n")
# Only a changed text touches the output, so an unchanged script recompiles nothing.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
