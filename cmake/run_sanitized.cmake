# Runs the tests of a sanitizer tree and fails on any sanitizer report.
#   cmake -DTREE=build/asan -DREGEX='^unit_' -DLOGS=DIR [-DEXCLUDE='^unit_x$']
#         [-DSUPP=lsan.supp|tsan.supp] [-DJOBS=2] [-DSKIP_IF_MISSING=ON] -P run_sanitized.cmake
# EXCLUDE: tests REGEX selects that do not run here (ctest -E).
# SKIP_IF_MISSING: a tree that was not built is a skip (the ctest entry's
# SKIP_REGULAR_EXPRESSION), not a failure (the optional TSan tree).
# Reports go to files in LOGS (log_path), one per process: a report from a
# child process (an actor started by a test, which may be killed or whose
# stderr nobody reads) fails the run as surely as one from the test itself.
# Every report is printed at the end.
foreach(v TREE REGEX LOGS)
  if(NOT ${v})
    message(FATAL_ERROR "run_sanitized.cmake: -D${v}= is required")
  endif()
endforeach()
if(NOT EXISTS ${TREE}/CTestTestfile.cmake AND SKIP_IF_MISSING)
  message("no sanitizer tree in ${TREE}: not built (cmake --build build --target vb_check_tsan)")
  return()
elseif(NOT EXISTS ${TREE}/CTestTestfile.cmake)
  message(FATAL_ERROR "no sanitizer tree in ${TREE}: run `cmake --build build --target vb_check_trees` "
                      "(tools/bootstrap.sh does)")
endif()
file(REMOVE_RECURSE ${LOGS})
file(MAKE_DIRECTORY ${LOGS})
set(ENV{ASAN_OPTIONS} "log_path=${LOGS}/asan:log_exe_name=1:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1")
set(ENV{UBSAN_OPTIONS} "log_path=${LOGS}/ubsan:log_exe_name=1:print_stacktrace=1:halt_on_error=1")
set(ENV{TSAN_OPTIONS} "log_path=${LOGS}/tsan:log_exe_name=1:halt_on_error=0:second_deadlock_stack=1")
get_filename_component(supp_name "${SUPP}" NAME)
if(SUPP AND EXISTS ${SUPP} AND supp_name MATCHES "^tsan")
  set(ENV{TSAN_OPTIONS} "$ENV{TSAN_OPTIONS}:suppressions=${SUPP}")
elseif(SUPP AND EXISTS ${SUPP})
  set(ENV{LSAN_OPTIONS} "suppressions=${SUPP}:print_suppressions=0")
endif()
if(NOT JOBS)
  set(JOBS 1)
endif()
set(exclude_args "")
if(EXCLUDE)
  set(exclude_args -E ${EXCLUDE})
endif()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} --test-dir ${TREE} -R ${REGEX} ${exclude_args} --output-on-failure
                        -j ${JOBS}
                RESULT_VARIABLE rc)
file(GLOB reports ${LOGS}/*)
foreach(r ${reports})
  file(READ ${r} text)
  message("==== sanitizer report ${r}\n${text}")
endforeach()
list(LENGTH reports n)
if(NOT rc EQUAL 0 OR n GREATER 0)
  message(FATAL_ERROR "sanitizer run failed: ctest exit ${rc}, ${n} sanitizer report(s)")
endif()
message("sanitizer run: all tests passed, no sanitizer report")
