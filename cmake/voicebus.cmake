# Shared build helpers: one generated main() per actor, one way to add tests.
set(VB_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

# vb_add_actor(NAME vb-capture KIND capture CLASS vb::capture::CaptureActor
#              HEADER actors/capture/capture_actor.h LIBS vb_capture)
# Generates the actor's main() from cmake/actor_main.cc.in: actors differ in
# their class, never in copied boilerplate.
function(vb_add_actor)
  cmake_parse_arguments(A "" "NAME;KIND;CLASS;HEADER" "LIBS" ${ARGN})
  set(VB_ACTOR_KIND ${A_KIND})
  set(VB_ACTOR_CLASS ${A_CLASS})
  set(VB_ACTOR_HEADER ${A_HEADER})
  configure_file(${VB_CMAKE_DIR}/actor_main.cc.in
                 ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}_main.cc @ONLY)
  add_executable(${A_NAME} ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}_main.cc)
  target_link_libraries(${A_NAME} PRIVATE vb_bus ${A_LIBS})
  set_property(GLOBAL APPEND PROPERTY VB_ACTOR_BINARIES ${A_NAME})
endfunction()

# vb_write_actor_list(): bin/vb-actors.list names every actor binary built
# here, one per line; `vb --print-default-config` asks exactly these for their
# sections (other vb-* binaries are tools and benches).
function(vb_write_actor_list)
  get_property(actors GLOBAL PROPERTY VB_ACTOR_BINARIES)
  list(SORT actors)
  list(JOIN actors "\n" body)
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/bin/vb-actors.list CONTENT "${body}\n")
endfunction()

# vb_add_gtest(NAME unit_bus_topics SOURCES a.cc b.cc LIBS vb_bus [LABELS unit] [TIMEOUT 60])
function(vb_add_gtest)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  # A test's files each keep their own helpers (kMs, Config(), …) in an
  # anonymous namespace: compiled one by one even in a unity build.
  set_target_properties(${T_NAME} PROPERTIES UNITY_BUILD OFF)
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(CMAKE_CROSSCOMPILING_EMULATOR)  # qemu-user (tools/cross-build.sh) runs a test ~10x slower
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 10")
  elseif(VB_SANITIZE)  # ASan/TSan run a test 2-5x slower (and its actors)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    ENVIRONMENT "VB_BIN_DIR=${CMAKE_BINARY_DIR}/bin;VB_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# vb_add_parts(LIST): add_subdirectory() each folder of LIST that has a
# CMakeLists.txt, honouring VB_ONLY.
function(vb_add_parts parts)
  foreach(part ${parts})
    get_filename_component(name ${part} NAME)
    if(VB_ONLY AND NOT name IN_LIST VB_ONLY)
      continue()
    endif()
    if(EXISTS ${part}/CMakeLists.txt)
      add_subdirectory(${part})
    endif()
  endforeach()
endfunction()
