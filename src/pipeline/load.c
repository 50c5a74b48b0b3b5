/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load.c — pipeline_load: the section table, assembled from the engines
 * that own each section, handed to the spec layer (which does not know the
 * engines). A new section is one line here and its owner's hooks.
 */
#include "pipeline/pipeline.h"

#include "check/check.h"
#include "image/outputs.h"
#include "publish/publish.h"

const struct spec_section *const pipeline_sections[] = {
        &image_disk_section,
        &image_outputs_section,
        &check_checks_section,
        &check_boot_section,
        &publish_section,
        NULL,
};

int pipeline_load(const struct spec_options *o, struct diag_list *d, struct spec **ret) {
        struct spec_options so = *o;
        so.sections = pipeline_sections;
        return spec_load(&so, d, ret);
}
