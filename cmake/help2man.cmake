# Script mode: writes the man page OUT of program BIN (called NAME) from the
# text its --help prints, so the page and --help cannot disagree. `vb` writes
# its own page (`vb help --man`: every help topic). Used by man_pages.cmake.
#   cmake -DBIN=… -DNAME=… -DOUT=… -DVERSION=… [-DEMULATOR=qemu-…] -P help2man.cmake
if(NAME STREQUAL "vb")
  execute_process(COMMAND ${EMULATOR} ${BIN} help --man OUTPUT_VARIABLE page RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "vb help --man exited ${rc}")
  endif()
  file(WRITE ${OUT} "${page}")
  return()
endif()
execute_process(COMMAND ${EMULATOR} ${BIN} --help OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NAME} --help exited ${rc}: every voicebus program answers --help with 0")
endif()
if(text STREQUAL "")
  message(FATAL_ERROR "${NAME} --help printed nothing on stdout")
endif()
# One line for NAME: the first line of prose after the usage lines.
set(summary "a voicebus program")
string(REPLACE ";" "," lines_text "${text}")
string(REPLACE "\n" ";" lines "${lines_text}")
foreach(line IN LISTS lines)
  if(line MATCHES "^[A-Z]" AND NOT line MATCHES "^(usage|Usage)")
    string(REGEX REPLACE "[.:]$" "" summary "${line}")
    break()
  endif()
endforeach()
# roff: backslashes, dashes, and lines that start with a control character.
foreach(var text summary)
  string(REPLACE "\\" "\\e" ${var} "${${var}}")
  string(REPLACE "-" "\\-" ${var} "${${var}}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" ${var} "${${var}}")
endforeach()
string(TOUPPER "${NAME}" upper)
string(REPLACE "-" "\\-" name_roff "${NAME}")
file(WRITE ${OUT}
     ".TH ${upper} 1 \"\" \"voicebus ${VERSION}\" \"User Commands\"\n"
     ".SH NAME\n${name_roff} \\- ${summary}\n"
     ".SH DESCRIPTION\n.nf\n${text}.fi\n"
     ".SH SEE ALSO\nvb(1); \\fBvb help\\fR lists every topic.\n")
