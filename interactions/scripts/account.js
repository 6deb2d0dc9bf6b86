// The account page: the sign-in methods can be put in order by dragging them (the buttons "Make
// primary", "Move up" and "Move down" do the same without JavaScript, or with a keyboard). A drop
// posts the new order with the form #method-order-form: its hidden input "order" gets the method
// ids, comma-separated, first = primary.
(function () {
  'use strict';
  var list = document.getElementById('methods');
  var form = document.getElementById('method-order-form');
  if (!list || !form || !form.elements.namedItem('order')) return;
  var dragged = null;

  function items() {
    return Array.prototype.slice.call(list.querySelectorAll('li[data-method]'));
  }

  items().forEach(function (item) {
    item.setAttribute('draggable', 'true');
    item.classList.add('draggable');
    item.addEventListener('dragstart', function (event) {
      dragged = item;
      event.dataTransfer.effectAllowed = 'move';
      event.dataTransfer.setData('text/plain', item.getAttribute('data-method'));
      item.classList.add('dragging');
    });
    item.addEventListener('dragend', function () {
      item.classList.remove('dragging');
      dragged = null;
    });
    item.addEventListener('dragover', function (event) {
      if (!dragged || dragged === item) return;
      event.preventDefault();
      var box = item.getBoundingClientRect();
      var after = event.clientY > box.top + box.height / 2;
      list.insertBefore(dragged, after ? item.nextSibling : item);
    });
    item.addEventListener('drop', function (event) {
      event.preventDefault();
      form.elements.namedItem('order').value = items()
        .map(function (i) {
          return i.getAttribute('data-method');
        })
        .join(',');
      form.submit();
    });
  });
})();
