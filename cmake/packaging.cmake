# Install layout and the Debian package (issue 17, item 2). Include after every
# program's target exists (it installs the actors that vb_add_actor registered).
#
#   cmake --install BUILD --prefix /usr     binaries to bin/, configs to
#     share/voicebus/config/ (where `vb run demo.yaml` looks: BIN/../share/voicebus),
#     man pages to share/man/man1, units to lib/systemd/system, lib/sysusers.d
#     (cmake/man_pages.cmake, deploy/CMakeLists.txt); the dashboard is inside vb-gateway.
#   cmake --build BUILD --target package    BUILD/voicebus_VERSION_ARCH.deb (CPack)
include(GNUInstallDirs)
get_property(vb_pkg_actors GLOBAL PROPERTY VB_ACTOR_BINARIES)
set(vb_pkg_programs)
foreach(bin vb vb-broker vb-sniff vb-tune vb-cozesim ${vb_pkg_actors})
  if(TARGET ${bin})  # VB_ONLY builds leave some out
    list(APPEND vb_pkg_programs ${bin})
  endif()
endforeach()
# The one shared library of the project (vb_proto) is private: LIBDIR/voicebus,
# found through the programs' RUNPATH.
set(vb_pkg_private ${CMAKE_INSTALL_LIBDIR}/voicebus)
set_target_properties(${vb_pkg_programs} PROPERTIES INSTALL_RPATH "$ORIGIN/../${vb_pkg_private}")
install(TARGETS ${vb_pkg_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS vb_proto LIBRARY DESTINATION ${vb_pkg_private} NAMELINK_SKIP)
# `vb --print-default-config` reads BIN/vb-actors.list (cmake/voicebus.cmake).
install(FILES ${CMAKE_BINARY_DIR}/bin/vb-actors.list DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/config/demo.yaml ${CMAKE_SOURCE_DIR}/config/default.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/voicebus/config)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME voicebus)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "voicebus maintainers <maintainers@users.noreply.b-seed-ed05050d.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "voice-assistant runtime for Coze agents on a ZeroMQ bus")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # voicebus_0.1_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION sound)
# Shared libraries from dpkg-shlibdeps; what the programs run or load besides:
# espeak-ng (vb demo speaks the question), the pocketsphinx model (vb-cozesim).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_INSTALL_FULL_LIBDIR}/voicebus)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "espeak-ng, pocketsphinx-en-us")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pulseaudio-utils, alsa-utils")
include(CPack)
