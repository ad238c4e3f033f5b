# The checks CI runs beside the ordinary tests, as ctest entries of the main
# tree (so `ctest --test-dir build` — the README's command — runs them):
#
#   sanitize_asan_ubsan   the tests VB_SANITIZE_SUITE names, rebuilt with
#                         ASan+UBSan (-O1) in build/asan; fails on a failed
#                         test or on any sanitizer report, including one from
#                         a child process
#   fuzz_<name>           a short libFuzzer run of each target of tests/fuzz
#                         (built with clang in build/fuzz), only if clang is
#                         installed (tools/bootstrap.sh installs it)
#   build_product_only    the product-only configuration (-DVB_BUILD_TESTS=OFF)
#                         configures with GTest and Google Benchmark made
#                         unfindable, and its build graph has every product
#                         binary of this tree and links neither library
#
# The trees are built by `cmake --build build --target vb_check_trees`
# (tools/bootstrap.sh does, after the main build). Enabled by
# -DVB_CHECK_TREES=ON (bootstrap), so a developer's own build dirs do not get
# entries for trees they never built.
option(VB_CHECK_TREES "ctest entries for the ASan+UBSan tree, fuzz runs and the product-only check" OFF)
if(NOT VB_CHECK_TREES OR VB_SANITIZE OR VB_FUZZ OR NOT VB_BUILD_TESTS)
  return()
endif()

# Tests run under ASan+UBSan in CI: the unit tests of the bus, the gateway,
# the decoder, audio I/O and the session's state store, each seen passing
# under ASan+UBSan. unit_session (mid-change when this was set), the other
# unit tests, the integration tests (bus, hostile,
# session, gateway, simulator) and e2e run under ASan in a developer's
# build-asan; they join this list once each has passed there (CI time: see
# the report of issue 18).
set(VB_SANITIZE_SUITE
  "^(unit_bus|unit_decoder|unit_audio_io|unit_gateway|unit_session_state)$"
  CACHE STRING "ctest regex of the tests the CI sanitizer run runs")

set(vb_asan_dir ${CMAKE_BINARY_DIR}/asan)
set(vb_fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
set(vb_tree_args -G ${CMAKE_GENERATOR} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1")
if(CMAKE_CXX_COMPILER_LAUNCHER)
  list(APPEND vb_tree_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
                           -DCMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER})
endif()

set(vb_tree_commands
  COMMAND ${CMAKE_COMMAND} -S ${CMAKE_SOURCE_DIR} -B ${vb_asan_dir} ${vb_tree_args}
          -DVB_SANITIZE=address,undefined "-DVB_SANITIZE_SUITE=${VB_SANITIZE_SUITE}"
  COMMAND ${CMAKE_COMMAND} --build ${vb_asan_dir} --target vb_sanitize_suite)

find_program(VB_CLANGXX NAMES clang++ clang++-14)
find_program(VB_CLANG NAMES clang clang-14)
if(VB_CLANGXX AND VB_CLANG)
  list(APPEND vb_tree_commands
    COMMAND ${CMAKE_COMMAND} -S ${CMAKE_SOURCE_DIR} -B ${vb_fuzz_dir} ${vb_tree_args}
            -DCMAKE_C_COMPILER=${VB_CLANG} -DCMAKE_CXX_COMPILER=${VB_CLANGXX}
            -DVB_FUZZ=ON -DVB_BUILD_TESTS=OFF
    COMMAND ${CMAKE_COMMAND} --build ${vb_fuzz_dir} --target vb_fuzz_targets)
  include(${CMAKE_SOURCE_DIR}/tests/fuzz/targets.cmake)
  foreach(name ${VB_FUZZ_TARGETS})
    vb_add_fuzz_run(${name} ${vb_fuzz_dir}/bin/fuzz_${name})
  endforeach()
else()
  message(STATUS "clang not found: no fuzz_* ctest entries (tools/bootstrap.sh installs clang)")
endif()

add_custom_target(vb_check_trees ${vb_tree_commands} USES_TERMINAL VERBATIM
  COMMENT "Building the ASan+UBSan tree (build/asan) and the fuzz tree (build/fuzz)")

add_test(NAME sanitize_asan_ubsan
  COMMAND ${CMAKE_COMMAND} -DTREE=${vb_asan_dir} -DREGEX=${VB_SANITIZE_SUITE}
          -DLOGS=${CMAKE_BINARY_DIR}/sanitizer-logs -DSUPP=${CMAKE_SOURCE_DIR}/cmake/lsan.supp
          -P ${CMAKE_SOURCE_DIR}/cmake/run_sanitized.cmake)
set_tests_properties(sanitize_asan_ubsan PROPERTIES LABELS sanitize TIMEOUT 2400)

if(CMAKE_GENERATOR STREQUAL "Ninja")  # the check reads build.ninja
add_test(NAME build_product_only
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DDIR=${CMAKE_BINARY_DIR}/product-only
          -DMAIN=${CMAKE_BINARY_DIR} -DGENERATOR=${CMAKE_GENERATOR}
          -P ${CMAKE_SOURCE_DIR}/cmake/check_product_only.cmake)
set_tests_properties(build_product_only PROPERTIES LABELS build TIMEOUT 300)
endif()
