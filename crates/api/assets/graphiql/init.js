// Cohort's GraphiQL page: renders GraphiQL (the vendored UMD builds loaded before this file
// define React, ReactDOM and GraphiQL) against /graphql. Served from the binary like the rest;
// the page's Content-Security-Policy allows no inline script, so this is a file of its own.
//
// As in GraphiQL's official example, `?query=`, `?variables=` and `?operationName=` in the page
// URL are the initial editor contents, and editing keeps them in the URL (so it can be shared).
// Headers (e.g. `{"Authorization": "Bearer …"}`) persist in localStorage (`graphiql:headers`).
(function () {
  'use strict';

  var params = new URLSearchParams(window.location.search);

  function updateURL() {
    var search = params.toString();
    window.history.replaceState(null, '', window.location.pathname + (search ? '?' + search : ''));
  }

  function keepInURL(name) {
    return function (value) {
      if (value) {
        params.set(name, value);
      } else {
        params.delete(name);
      }
      updateURL();
    };
  }

  function fromURL(name) {
    var v = params.get(name);
    return v === null ? undefined : v;
  }

  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      query: fromURL('query'),
      variables: fromURL('variables'),
      operationName: fromURL('operationName'),
      onEditQuery: keepInURL('query'),
      onEditVariables: keepInURL('variables'),
      onEditOperationName: keepInURL('operationName'),
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
