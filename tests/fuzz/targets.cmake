# The fuzz targets (tests/fuzz/<name>_fuzz.cc, seeds in corpus/<name>/) and
# their short run as a ctest entry. Shared by tests/fuzz/CMakeLists.txt (the
# clang tree that builds them) and cmake/check_trees.cmake (the main tree,
# whose ctest runs them).
set(VB_FUZZ_TARGETS
  coze_downlink gateway_client cozesim_upstream cozesim_rest
  config_yaml bus_frames wav_reader audio_input mcap_reader
  coze_text_chats downlink_decoder tool_calls)
set(VB_FUZZ_SECONDS 5 CACHE STRING "seconds of each fuzz target's ctest run (CI: 12 targets)")

# vb_add_fuzz_run(NAME EXE): ctest entry fuzz_NAME runs EXE for
# VB_FUZZ_SECONDS over the seed corpus; new inputs go to a scratch folder in
# the build tree, never into the repository's corpus. Any crash, leak,
# timeout (10 s per input) or sanitizer report fails it; the crashing input
# is left as crash-* in the scratch folder.
function(vb_add_fuzz_run name exe)
  set(scratch ${CMAKE_CURRENT_BINARY_DIR}/fuzz_scratch/${name})
  file(MAKE_DIRECTORY ${scratch})
  add_test(NAME fuzz_${name}
    COMMAND ${exe} -max_total_time=${VB_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
            -print_final_stats=1 -artifact_prefix=${scratch}/ ${scratch} ${VB_SOURCE_DIR_FOR_FUZZ}/tests/fuzz/corpus/${name})
  math(EXPR limit "${VB_FUZZ_SECONDS} * 3 + 60")
  set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT ${limit})
endfunction()
set(VB_SOURCE_DIR_FOR_FUZZ ${CMAKE_SOURCE_DIR})
