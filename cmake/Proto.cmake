# ka_generate_protos(SRCS_VAR DIR_VAR proto...): run protoc-c at build time on the
# project's .proto files and on google/protobuf/empty.proto (libprotobuf-c ships
# no generated code for it). protoc-c runs on the build machine in every preset.
find_program(KA_PROTOC_C protoc-c REQUIRED)
set(KA_PROTOBUF_INCLUDE /usr/include CACHE PATH "Where google/protobuf/empty.proto lives")

function(ka_generate_protos srcs_var dir_var)
  set(out ${CMAKE_BINARY_DIR}/proto-gen)
  file(MAKE_DIRECTORY ${out}/google/protobuf)
  set(srcs)
  set(empty_c ${out}/google/protobuf/empty.pb-c.c)
  add_custom_command(
    OUTPUT ${empty_c} ${out}/google/protobuf/empty.pb-c.h
    COMMAND ${KA_PROTOC_C} --c_out=${out} -I${KA_PROTOBUF_INCLUDE}
            ${KA_PROTOBUF_INCLUDE}/google/protobuf/empty.proto
    DEPENDS ${KA_PROTOBUF_INCLUDE}/google/protobuf/empty.proto
    COMMENT "protoc-c google/protobuf/empty.proto")
  list(APPEND srcs ${empty_c})
  foreach(proto ${ARGN})
    get_filename_component(name ${proto} NAME_WE)
    get_filename_component(dir ${proto} DIRECTORY)
    add_custom_command(
      OUTPUT ${out}/${name}.pb-c.c ${out}/${name}.pb-c.h
      COMMAND ${KA_PROTOC_C} --c_out=${out} -I${dir} -I${KA_PROTOBUF_INCLUDE} ${proto}
      DEPENDS ${proto}
      COMMENT "protoc-c ${name}.proto")
    list(APPEND srcs ${out}/${name}.pb-c.c)
  endforeach()
  set(${srcs_var} ${srcs} PARENT_SCOPE)
  set(${dir_var} ${out} PARENT_SCOPE)
endfunction()
