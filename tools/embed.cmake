# embed.cmake: turns a file into a C header holding its bytes, so that a
# program serves the file without reading it at run time (eda console's
# page: the binary is all there is to install).
# cmake -DIN=FILE -DOUT=HEADER -DVAR=NAME -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Sixteen bytes a line keeps the header readable in a diff or a debugger.
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "/* Generated from ${name} by embed.cmake at build time: do not edit. */\n"
     "static const unsigned char ${VAR}[] = {\n${bytes}};\n")
# Rewritten only when it changed: an unchanged page rebuilds nothing.
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
