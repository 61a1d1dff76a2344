//! Raw shapes → [`VmConfig`]: the table-merging rules, provider, boot and
//! root. Resources, network and volumes have their own files.

use toml::Spanned;

use super::context::{Cx, Want, either};
use super::error::HacError;
use super::raw::{RawHac, Text};
use super::{network, resources, rules};
use crate::model::{Provider, RootFs, SpacecoreInfo, VmConfig};

pub(crate) fn validate(raw: RawHac, cx: &mut Cx<'_>) -> Result<VmConfig, HacError> {
    let provider = raw.provider.as_ref().map(|p| provider(cx, p)).transpose()?;
    let (cpus, memory_mib, disk_bytes) =
        resources::check(cx, raw.hardware.as_ref(), raw.resources.as_ref())?;
    let hw = raw.hardware.map(Spanned::into_inner).unwrap_or_default();
    let boot = raw.boot.map(Spanned::into_inner).unwrap_or_default();

    let kernel = either(cx, "kernel", hw.kernel, "[hardware]", boot.kernel, "[boot]")?;
    let drive = either(cx, "drive", hw.drive, "[hardware]", boot.drive, "[boot]")?;
    let reference = either(
        cx,
        "ref",
        hw.reference,
        "[hardware]",
        boot.reference,
        "[boot]",
    )?;
    let kernel = match kernel {
        Some(k) => Some(cx.path(&k, "kernel", "vimana::hac::kernel_missing", Want::File)?),
        None => None,
    };
    let modules = match boot.modules {
        Some(m) => Some(cx.path(
            &m,
            "modules directory",
            "vimana::hac::modules_missing",
            Want::Dir,
        )?),
        None => None,
    };
    let cmdline_extra = boot
        .cmdline
        .unwrap_or_default()
        .into_iter()
        .map(|w| check_word(cx, w))
        .collect::<Result<_, _>>()?;
    let root = root(cx, drive, reference)?;
    let network = network::network(cx, raw.network, hw.interface)?;
    let volumes = network::volumes(cx, raw.volumes)?;

    let mut spacecore = raw
        .spacecore
        .map_or_else(SpacecoreInfo::default, |s| SpacecoreInfo {
            name: s.name,
            description: s.description,
            version: s.version,
            container_image: s.container_image,
            backend: s.backend,
            commands: Default::default(),
        });
    spacecore.commands = raw
        .commands
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    Ok(VmConfig {
        provider,
        cpus,
        memory_mib,
        disk_bytes,
        kernel,
        modules,
        cmdline_extra,
        root,
        network,
        volumes,
        spacecore,
    })
}

fn provider(cx: &Cx<'_>, p: &Text) -> Result<Provider, HacError> {
    Provider::parse(p.get_ref()).ok_or_else(|| {
        let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
        cx.err(
            "vimana::hac::provider",
            p.span(),
            format!(
                "unknown provider {:?}; providers: {}",
                p.get_ref(),
                names.join(", ")
            ),
            "unknown provider",
            format!(
                "set provider to one of {} (or remove it for the default, qemu)",
                names.join(", ")
            ),
        )
    })
}

fn check_word(cx: &Cx<'_>, w: Text) -> Result<String, HacError> {
    rules::cmdline_word(w.get_ref()).map_err(|b| cx.fail(w.span(), b))?;
    Ok(w.into_inner())
}

fn root(cx: &mut Cx<'_>, drive: Option<Text>, reference: Option<Text>) -> Result<RootFs, HacError> {
    if let Some(d) = drive {
        if let Some(r) = &reference {
            let w = cx.diag(
                "vimana::hac::drive_and_ref",
                r.span(),
                "both `drive` and `ref` are set: the drive is used and `ref` is ignored",
                "ignored",
                "remove `ref` to silence this warning, or remove `drive` to boot the image",
            );
            cx.warnings.push(w.warning());
        }
        let path = cx.path(&d, "drive", "vimana::hac::drive_missing", Want::File)?;
        return Ok(RootFs::Drive { path });
    }
    let Some(r) = reference else {
        return Ok(RootFs::Initramfs);
    };
    rules::image_ref(r.get_ref()).map_err(|b| cx.fail(r.span(), b))?;
    Ok(RootFs::Image {
        reference: r.into_inner(),
    })
}
