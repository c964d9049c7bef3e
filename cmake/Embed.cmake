# ml_embed(OUT_C SYMBOL FILES...) — compile files into a C table at build time.
#
# Generates ${OUT_C} defining
#   const ml_embedded SYMBOL[] = {{"name", data, len}, ..., {NULL, NULL, 0}};
# where name is the file's path relative to the current source dir and data is
# NUL-terminated.  Used for SQL migrations, openapi.json and the web UI, so the
# binaries need no source tree at run time.
function(ml_embed OUT_C SYMBOL)
  set(_files ${ARGN})
  set(_abs "")
  foreach(f ${_files})
    list(APPEND _abs "${CMAKE_CURRENT_SOURCE_DIR}/${f}")
  endforeach()
  string(REPLACE ";" "," _joined "${_files}")
  add_custom_command(
    OUTPUT ${OUT_C}
    COMMAND ${CMAKE_COMMAND} -DOUT=${OUT_C} -DSYMBOL=${SYMBOL}
            -DBASE=${CMAKE_CURRENT_SOURCE_DIR} "-DFILES=${_joined}"
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedGen.cmake
    DEPENDS ${_abs} ${PROJECT_SOURCE_DIR}/cmake/EmbedGen.cmake
    COMMENT "Embedding ${SYMBOL}"
    VERBATIM)
endfunction()
