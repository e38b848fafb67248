# cmake -DSTRIP=... -DIN=... -DOUT=... -P PrintSize.cmake: strip a copy, print its size.
execute_process(COMMAND ${STRIP} -o ${OUT} ${IN} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "strip failed for ${IN}")
endif()
file(SIZE ${OUT} size)
math(EXPR kib "${size} / 1024")
message(STATUS "kata-agent stripped size: ${size} bytes (${kib} KiB) -> ${OUT}")
