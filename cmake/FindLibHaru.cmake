# FindLibHaru — Debian ships libharu (libhpdf-dev) without a pkg-config file.
#
# Defines LibHaru_FOUND, LibHaru_VERSION and the imported target LibHaru::LibHaru.
find_path(LibHaru_INCLUDE_DIR NAMES hpdf.h)
find_library(LibHaru_LIBRARY NAMES hpdf libhpdf)

if(LibHaru_INCLUDE_DIR AND EXISTS "${LibHaru_INCLUDE_DIR}/hpdf_version.h")
  file(STRINGS "${LibHaru_INCLUDE_DIR}/hpdf_version.h" _hpdf_ver
       REGEX "^#define HPDF_(MAJOR|MINOR|BUGFIX)_VERSION[ \t]+[0-9]+")
  foreach(_part MAJOR MINOR BUGFIX)
    string(REGEX REPLACE ".*HPDF_${_part}_VERSION[ \t]+([0-9]+).*" "\\1" _v_${_part} "${_hpdf_ver}")
  endforeach()
  set(LibHaru_VERSION "${_v_MAJOR}.${_v_MINOR}.${_v_BUGFIX}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LibHaru
  REQUIRED_VARS LibHaru_LIBRARY LibHaru_INCLUDE_DIR
  VERSION_VAR LibHaru_VERSION)

if(LibHaru_FOUND AND NOT TARGET LibHaru::LibHaru)
  add_library(LibHaru::LibHaru UNKNOWN IMPORTED)
  set_target_properties(LibHaru::LibHaru PROPERTIES
    IMPORTED_LOCATION "${LibHaru_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LibHaru_INCLUDE_DIR}")
endif()
mark_as_advanced(LibHaru_INCLUDE_DIR LibHaru_LIBRARY)
