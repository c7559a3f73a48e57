// Dashboard 2 flows for the ui-camera tests: the config nodes a dashboard page needs (ui-base, ui-theme,
// ui-page, ui-group) with the values the dashboard's own editor saves, and the ui-camera widgets on them.
"use strict";

function dashboardBase({ id = "dash-base", path = "/dashboard" } = {}) {
  return [
    {
      id,
      type: "ui-base",
      name: "camrelay test",
      path,
      appIcon: "",
      includeClientData: true,
      acceptsClientConfig: ["ui-notification", "ui-control"],
      showPathInSidebar: false,
      headerContent: "page",
      navigationStyle: "default",
      titleBarStyle: "default",
    },
    {
      id: `${id}-theme`,
      type: "ui-theme",
      name: "test theme",
      colors: {
        surface: "#ffffff",
        primary: "#0094CE",
        bgPage: "#eeeeee",
        groupBg: "#ffffff",
        groupOutline: "#cccccc",
      },
      sizes: {
        density: "default",
        pagePadding: "12px",
        groupGap: "12px",
        groupBorderRadius: "4px",
        widgetGap: "12px",
      },
    },
  ];
}

function dashboardPage({ id, base = "dash-base", name, path, order = 1 }) {
  return {
    id,
    type: "ui-page",
    name,
    ui: base,
    path,
    icon: "cctv",
    layout: "grid",
    theme: `${base}-theme`,
    breakpoints: [
      { name: "Default", px: "0", cols: "3" },
      { name: "Tablet", px: "576", cols: "6" },
      { name: "Small Desktop", px: "768", cols: "9" },
      { name: "Desktop", px: "1024", cols: "12" },
    ],
    order,
    className: "",
    visible: "true",
    disabled: "false",
  };
}

function dashboardGroup({ id, page, name, width = 6, order = 1 }) {
  return {
    id,
    type: "ui-group",
    name,
    page,
    width: String(width),
    height: "1",
    order,
    showTitle: true,
    className: "",
    visible: "true",
    disabled: "false",
    groupType: "default",
  };
}

function uiCamera({ id, z, group, stream = "", path = "", order = 1, width = 6, wires = [[]], ...rest }) {
  return {
    id,
    z,
    type: "ui-camera",
    name: "",
    group,
    order,
    width,
    height: 0,
    stream,
    path,
    transport: "auto",
    fit: "contain",
    controls: "snapshot,fullscreen,audio,record",
    label: "",
    wires,
    ...rest,
  };
}

module.exports = { dashboardBase, dashboardPage, dashboardGroup, uiCamera };
