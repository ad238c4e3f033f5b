# Man pages, generated at build time from the programs' own --help
# (cmake/help2man.cmake; `vb help --man` for vb(1)), into BUILD/man, and
# installed to share/man/man1. Include after every program's target exists.
include(GNUInstallDirs)
# A cross build runs the programs through its emulator (qemu-user), or has
# no man pages if it has none.
if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  message(STATUS "man pages: not generated (cross build without CMAKE_CROSSCOMPILING_EMULATOR)")
  return()
endif()
get_property(vb_man_actors GLOBAL PROPERTY VB_ACTOR_BINARIES)
set(vb_man_pages)
foreach(bin vb vb-broker vb-sniff vb-tune vb-cozesim ${vb_man_actors})
  if(NOT TARGET ${bin})  # VB_ONLY builds leave some out
    continue()
  endif()
  set(page ${CMAKE_BINARY_DIR}/man/${bin}.1)
  add_custom_command(OUTPUT ${page}
                     COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:${bin}> -DNAME=${bin} -DOUT=${page}
                             "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}"
                             -DVERSION=${PROJECT_VERSION} -P ${CMAKE_CURRENT_LIST_DIR}/help2man.cmake
                     DEPENDS ${bin} ${CMAKE_CURRENT_LIST_DIR}/help2man.cmake
                     COMMENT "man page ${bin}.1" VERBATIM)
  list(APPEND vb_man_pages ${page})
endforeach()
add_custom_target(vb_man_pages ALL DEPENDS ${vb_man_pages})
install(FILES ${vb_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
